"""Adapters to the outside world behind small Protocols: card and bank processors (with a
sandbox processor), QR codecs, billers, FX rates, notification channels."""
