"""Run one handler of the built artifacts the way Lambda's Python runtime does.

Started as ``python3.12 -S -E lambda_driver.py REQUEST.json RESULT.json``: no site-packages
and no PYTHON* variables, so nothing from the development environment can be imported.
``sys.path`` is what Lambda sets: the task root (the function zip), ``/opt/python`` (the
layers, unpacked on top of each other) and the runtime's own folder (boto3), then the
standard library. The handler gets the event and a context; its return value is written
to RESULT.json (the handler's log lines go to stdout, as on Lambda).
"""

import importlib
import json
import sys
import time
import uuid


class Context:
    def __init__(self, name: str, timeout: float) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "artifact-test"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    request_path, result_path = sys.argv[1], sys.argv[2]
    with open(request_path) as f:
        request = json.load(f)
    stdlib = [p for p in sys.path[1:] if "site-packages" not in p]
    sys.path[:] = [request["task_root"], request["opt_python"], request["runtime"], *stdlib]
    module_name, function_name = request["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    result = handler(request["event"], Context(request["function_name"], request["timeout"]))
    modules = {
        name: getattr(sys.modules[name], "__file__", None)
        for name in ("webhooks", "pydantic_core", "boto3", "botocore", "aws_xray_sdk")
        if name in sys.modules
    }
    with open(result_path, "w") as f:
        json.dump({"result": result, "modules": modules, "python": list(sys.version_info[:3])}, f)


if __name__ == "__main__":
    main()
