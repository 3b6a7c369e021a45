"""Commerce: a marketplace on the ledger (docs/commerce.md).

Suppliers list products and stock, resellers sell them through catalogs of their own
with a margin, shoppers fill carts and check out. This package's catalog side
(catalog, resellers, inventory, carts, pricing, promotions, taxes) and its order side
(checkout, orders, payments, refunds) pay through `pacioli.payments`; every movement of
money is a ledger transfer.
"""
