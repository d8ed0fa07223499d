"""The matching core: order books, matcher, wallets and the order-service pipeline."""
