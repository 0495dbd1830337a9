"""Local servers speaking third-party wire protocols (OpenAI Realtime and chat, Twilio REST), built from the
owners' published types so they cannot drift from the real services."""
