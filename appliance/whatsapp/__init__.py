"""WhatsApp through a Baileys bridge: webhook shapes (wire), storage (store), jobs, the bridge client, API."""
