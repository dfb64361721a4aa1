"""chartdraft's statement checks (import name ``chartdraft_guardrails``).

The folder is ``guardrails/`` but the package is not named ``guardrails``: that import name belongs
to the guardrails-ai library.
"""
