"""The check functions of the notebooks' exercises, one module per notebook (``nb01`` for notebook 01, and so on).

Each ``check_*`` function raises an ``AssertionError`` whose message names the mistake and the method
(mean instead of sum, bits instead of nats, the other KL direction, ...), never the expected number,
and returns ``None`` for a right answer. They live here rather than in the notebooks so that
``tests/`` can call each with the right answer and with typical wrong ones (``tests/test_exercises_*.py``).
"""
