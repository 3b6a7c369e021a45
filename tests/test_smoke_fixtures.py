from pacioli.ledger import credit, debit


def test_a_transfer_moves_money_between_two_accounts(ledger, new_key):
    bank = ledger.open_account(asset_code="USD", normal_side="debit", idempotency_key=new_key())
    wallet = ledger.open_account(
        asset_code="USD", normal_side="credit", debits_must_not_exceed_credits=True,
        idempotency_key=new_key(),
    )
    ledger.transfer(
        [debit(bank.value.id, 1050), credit(wallet.value.id, 1050)], idempotency_key=new_key()
    )
    assert ledger.get_account(wallet.value.id).balance_minor == 1050
    assert ledger.get_account(bank.value.id).balance_minor == 1050
