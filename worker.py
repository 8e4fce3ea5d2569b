"""The Temporal worker (placeholder).

It will build and run the worker: connect a Temporal client with iterloop's pydantic data
converter, register the GraphRun interpreter workflow (workflows/) and the activities
(activities/: LLM turns, builtin tools, shell, connectors, notifications), and poll the task
queues. It arrives with the Temporal runtime milestone, together with `iterloop run`.
"""
