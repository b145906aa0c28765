"""Harnesses for training and evaluating agents: TRL (``trl``), Inspect AI (``inspect_task``),
and the Hugging Face datasets they read (``dataset``). Importing them loads neither torch nor
TRL nor Inspect AI; only running a trainer or an evaluation does."""
