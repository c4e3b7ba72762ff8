#!/bin/bash
# LocalStack ready hook: the MongoDB URI in SSM, and the queues for running the CLI or
# `webhooks local` against LocalStack before a stack is deployed.
set -euo pipefail
awslocal ssm put-parameter --name /webhooks/mongo-uri --type SecureString \
  --value "mongodb://mongo:27017/?directConnection=true" --overwrite
for q in webhooks-events-dlq webhooks-delivery-dlq; do
  awslocal sqs create-queue --queue-name "$q" --attributes MessageRetentionPeriod=1209600
done
dlq_arn() { awslocal sqs get-queue-attributes --queue-url "http://localhost:4566/000000000000/$1" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text; }
awslocal sqs create-queue --queue-name webhooks-events --attributes \
  "{\"VisibilityTimeout\":\"180\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$(dlq_arn webhooks-events-dlq)\\\",\\\"maxReceiveCount\\\":\\\"20\\\"}\"}"
awslocal sqs create-queue --queue-name webhooks-delivery --attributes \
  "{\"VisibilityTimeout\":\"360\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$(dlq_arn webhooks-delivery-dlq)\\\",\\\"maxReceiveCount\\\":\\\"10\\\"}\"}"
echo "webhooks: LocalStack ready"
