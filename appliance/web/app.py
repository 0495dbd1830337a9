"""The API role's Quart-Trio application, built around already-open Services."""

from __future__ import annotations

from quart import Blueprint
from quart_trio import QuartTrio

from appliance.accounts import api as accounts_api
from appliance.calls import api as calls_api
from appliance.files import api as files_api
from appliance.jobs.queue import JobQueue
from appliance.leads import api as leads_api
from appliance.receipts import api as receipts_api
from appliance.services import Services
from appliance.web import auth, crm, health, jobs
from appliance.web.context import EXTENSION, JOBS_EXTENSION
from appliance.web.errors import install_error_handlers
from appliance.web.inputs import install_input_limits
from appliance.web.openapi import install_openapi
from appliance.web.security import install_security_headers
from appliance.whatsapp import api as whatsapp_api

# The app shell's own blueprints, then one per feature.
BLUEPRINTS: tuple[Blueprint, ...] = (
    health.bp, auth.bp, jobs.bp, crm.bp,
    accounts_api.bp, leads_api.bp, calls_api.bp, whatsapp_api.bp, receipts_api.bp, files_api.bp,
)


def create_app(services: Services) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.extensions[EXTENSION] = services
    app.extensions[JOBS_EXTENSION] = queue = JobQueue(services.redis, services.keys)
    install_openapi(app)
    install_input_limits(app)  # before the blueprints: their <int:...> ids use its bigint-bounded converter
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    install_error_handlers(app)
    install_security_headers(app, services.settings.public_url)
    health.install_request_metrics(app)
    whatsapp_api.install_fast_webhook(app, services, queue)  # the webhook's burst skips Quart (fast_route.py)
    return app
