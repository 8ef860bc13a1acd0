"""`mis-eval sweep`: a plan of models × benchmark groups run to a leaderboard, here or on Ray.

plan.py (the YAML, validated) -> tasks.py (groups to tasks) -> status.py (jobs, what is done,
what judging costs) -> execute.py (running them here; ray_pool.py on Ray; runner.py one
subprocess; state.py the sweep's memory). Nothing heavy is imported here.
"""
