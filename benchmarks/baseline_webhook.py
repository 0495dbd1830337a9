"""The original system's webhook design, for comparison: Flask (under gunicorn, threads) checking the
secret and enqueueing one RQ job per message. Run by webhook_bench.py:

    gunicorn -w 1 -k gthread --threads 8 -b 127.0.0.1:PORT benchmarks.baseline_webhook:app
"""

from __future__ import annotations

import hmac
import os

from flask import Flask, jsonify, request
from redis import Redis
from rq import Queue

app = Flask(__name__)
queue = Queue("whatsapp", connection=Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")))
SECRET = os.environ["INTERNAL_SECRET"]


def process_message(tenant: int, message: dict) -> None:  # what the RQ worker would run
    return None


@app.post("/webhook/whatsapp/incoming")
def incoming():
    if not hmac.compare_digest(request.headers.get("X-Internal-Secret", ""), SECRET):
        return jsonify({"error": "unauthorized"}), 401
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "tenantId" not in body:
        return jsonify({"error": "malformed"}), 400
    for message in (body.get("payload") or {}).get("messages", []):
        job_id = f"baileys-{body['tenantId']}-{message['key']['id']}"
        queue.enqueue(process_message, body["tenantId"], message, job_id=job_id)
    return jsonify({"success": True})
