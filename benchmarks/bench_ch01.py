"""Chapter 1 throughput: environment steps/s and planning time per action, per profile.

Run: python benchmarks/bench_ch01.py  (same as: python -m wmlib bench)
"""

from wmlib.bench import main

if __name__ == "__main__":
    main()
