"""``llm-agent eval``'s harness: InfiAgent-DABench questions run through ``SessionManager`` and scored.

Below the front ends, above the agents: ``dataset`` (reading and checking the files), ``scoring`` (the
published closed-form method and its metrics), ``runner`` (fresh sessions, ``-j N`` at a time, timeouts,
cassettes), ``records`` (what each question leaves in the output folder), ``prepare`` (a new or resumed
eval) and ``report`` (the summary as JSON and markdown). The CLI only parses, shows progress and delegates.
"""
