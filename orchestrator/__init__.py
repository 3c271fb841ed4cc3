"""The routing brain: policies, request signals, estimates, budgets, decisions.

Pure Python: nothing here imports gRPC or llama.cpp.
"""
