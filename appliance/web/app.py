"""The API role's Quart-Trio application, built around already-open Services."""

from __future__ import annotations

from quart_trio import QuartTrio

from appliance.files import api as files_api
from appliance.jobs.queue import JobQueue
from appliance.receipts import api as receipts_api
from appliance.services import Services
from appliance.web import auth, calls, crm, health, jobs, leads, whatsapp
from appliance.web.context import EXTENSION, JOBS_EXTENSION
from appliance.web.errors import install_error_handlers


def create_app(services: Services) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.extensions[EXTENSION] = services
    app.extensions[JOBS_EXTENSION] = JobQueue(services.redis, services.keys)
    for blueprint in (health.bp, auth.bp, leads.bp, jobs.bp, calls.bp, whatsapp.bp, crm.bp, receipts_api.bp,
                      files_api.bp):
        app.register_blueprint(blueprint)
    install_error_handlers(app)
    health.install_request_metrics(app)
    return app
