"""The business's AI agent: the GA Realtime phone agent, its tools, and AI replies to WhatsApp messages."""
