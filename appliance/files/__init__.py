"""Files kept under ``DATA_DIR/<business>/`` (attachments, previews, thumbnails, media) and the signed,
expiring URLs they are served through (``/api/files/<token>``).

Errors::

    FileTokenError            a URL that is forged, expired or names another business (the route's 403)
"""

from appliance.files.signing import FileTokenError, file_url, read_token, serializer
from appliance.files.storage import absolute_path, store_blob

__all__ = ["FileTokenError", "absolute_path", "file_url", "read_token", "serializer", "store_blob"]
