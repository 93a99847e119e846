"""`make bench`: Musaed's benchmark (NLU quality, REST latency under load, training, memory).

bench/run.py is the entry; stats.py, load.py, resources.py, nlu.py and
report.py are the parts.  See bench/NOTES.md for what the figures mean.
"""
