"""Model providers behind one small interface, and the `iterloop.llm_turn` activity that picks one.

`provider.py` holds the interface and the model-string → provider rule; each provider lives in its
own module (`scripted.py` today; Anthropic and OpenAI arrive with the LLM milestone).
"""
