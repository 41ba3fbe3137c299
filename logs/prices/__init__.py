"""The model price list: which price applies to a record and what it cost (book.py, read by
ingest, the log detail and the pricing page), and its writes from the genai-prices snapshot
(sync.py, `manage.py sync_prices`). Operators edit prices in the admin (logs.admin).
"""
