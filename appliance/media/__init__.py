"""The media role: Twilio voice webhooks and Media Streams WebSockets on Hypercorn's trio worker."""
