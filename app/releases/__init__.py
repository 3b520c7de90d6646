"""Releases: A/B releases of prompt versions, and the statistics that judge them.

A release label of a prompt can be split across versions (arms: one control, one or more
challengers); `app.releases.judging` turns each arm's feedback scores, request outcomes,
latencies and tokens into per-arm summaries, a verdict that stays valid under daily looks,
and the guardrail that rolls a bad challenger back.
"""
