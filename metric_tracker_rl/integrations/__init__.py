"""Harnesses for training and evaluating agents: TRL's environment factory (``trl``), the
Hugging Face datasets it trains on (``dataset``), and an Inspect AI task (``inspect_task``).
Importing ``trl`` or ``dataset`` loads neither torch nor TRL; ``inspect_task`` is Inspect's
to load (it needs the ``inspect`` extra)."""
