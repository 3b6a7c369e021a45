"""Money flows of the case studies (wallets, P2P, QR and bill payments, top-up, withdrawal), each
composing ledger commands. See docs/payments.md."""
