"""Gmail receipts: connect a mailbox (OAuth), sync it in the background, extract and serve receipts.

Modules: ``oauth`` (connect), ``tokens`` (refresh tokens under MultiFernet), ``gmail`` (Google's client,
one AuthorizedHttp per thread), ``message`` (a Gmail message's parts), ``extract`` and ``money`` (what
counts as a receipt, vendor/amount/currency), ``quota`` (per-mailbox budget, backoff), ``sync`` (full and
incremental runs, checkpoints), ``store`` (tenant-scoped queries), ``jobs``, ``api``, ``cli``.
The API role imports only ``api``, ``oauth``, ``tokens`` and ``store``: jobs are enqueued by name.

Errors::

    ReceiptsError
    ├── OAuthError             bad or expired state, or Google refused the code (the callback's 400)
    ├── ReconnectNeededError   Google answered invalid_grant for the stored refresh token
    └── GmailError             any other failed Google call (after retries)
"""


class ReceiptsError(Exception):
    pass


class OAuthError(ReceiptsError):
    pass


class ReconnectNeededError(ReceiptsError):
    pass


class GmailError(ReceiptsError):
    pass
