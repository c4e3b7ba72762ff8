// MongoDB init script: a demo partner (API key "demo-localstack-key", stored as its SHA-256).
db = db.getSiblingDB("recart_webhook_db");
const id = ObjectId();
db.partners.insertOne({
  _id: id,
  name: "demo-partner",
  webhookUrl: "http://host.docker.internal:8080/webhooks",
  apiKeyHash: "dbd75cbf1400d58317ebdab145152168fccb22d99d87eaa8df6a600fdbadeca4",
  secretKey: "whsec_ZGVtby1zZWNyZXQtZm9yLWxvY2Fsc3RhY2stb25seSE=",
  previousSecrets: [],
  isActive: true,
  createdAt: new Date(),
  updatedAt: new Date(),
});
db.partners.createIndex({ apiKeyHash: 1 }, { unique: true, sparse: true });
db.subscriptions.createIndex({ eventType: 1, isActive: 1 });
db.subscriptions.insertMany([
  { partnerId: id, eventType: "order.*", isActive: true },
  { partnerId: id, eventType: "customer.created", isActive: true },
]);
