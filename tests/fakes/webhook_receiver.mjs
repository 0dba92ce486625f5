// webhook_receiver.mjs - a webhook receiver for the tests: every POST to
// /hook is verified with `standardwebhooks`, the Standard Webhooks
// project's own JavaScript library (an implementation independent of
// src/util/stdwh.c), recorded, and answered with the next status of a
// script the test sets.
//
//   node webhook_receiver.mjs NODE_DIR        (NODE_DIR holds node_modules)
//
// Prints "listening PORT" once bound to 127.0.0.1 on a free port.
//   POST /_config {"secret": "whsec_…", "script": [500, 500], "default": 200}
//        replaces the secret and the statuses still to answer
//   GET  /_log    every delivery so far: [{id, timestamp, signature, body,
//        verified, error, answered, at}]
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const nodeDir = process.argv[2];
const require = createRequire(path.join(nodeDir, "package.json"));
const { Webhook } = require("standardwebhooks");

let secret = null;
let script = [];
let dflt = 200;
const log = [];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on("data", (c) => {
      n += c.length;
      if (n > 1 << 20) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    if (req.method === "POST" && req.url === "/_config") {
      const c = JSON.parse(body);
      if ("secret" in c) secret = c.secret;
      if ("script" in c) script = c.script.slice();
      if ("default" in c) dflt = c.default;
      res.writeHead(204).end();
      return;
    }
    if (req.method === "GET" && req.url === "/_log") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(log));
      return;
    }
    if (req.method === "POST" && req.url.startsWith("/hook")) {
      const entry = {
        path: req.url,
        id: req.headers["webhook-id"] ?? null,
        timestamp: req.headers["webhook-timestamp"] ?? null,
        signature: req.headers["webhook-signature"] ?? null,
        contentType: req.headers["content-type"] ?? null,
        body,
        verified: false,
        error: null,
        at: Date.now() / 1000,
      };
      try {
        if (secret === null) throw new Error("no secret configured");
        new Webhook(secret).verify(body, {
          "webhook-id": entry.id,
          "webhook-timestamp": entry.timestamp,
          "webhook-signature": entry.signature,
        });
        entry.verified = true;
      } catch (e) {
        entry.error = String(e && e.message ? e.message : e);
      }
      entry.answered = script.length > 0 ? script.shift() : dflt;
      log.push(entry);
      res.writeHead(entry.answered, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    res.writeHead(404).end();
  } catch (e) {
    res.writeHead(400).end(String(e));
  }
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
