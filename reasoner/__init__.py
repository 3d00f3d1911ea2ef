"""reasoner: make LLM reasoning cheaper without making it worse.

``import reasoner`` is light: vllm, ray, trl and peft are imported only inside the modules that need them.
"""

__version__ = "0.1.0"
