"""The dev kit: what runs on a laptop or in CI, never in a pod.

An embedded broker (Apache Kafka in KRaft mode, or Tansu), the event simulator, the benchmarks and
the demo. They import the product (``shoppulse.consumers``, ``shoppulse.models``); the product never
imports them (``tests/unit/test_layout.py``). Their commands (``shoppulse broker``, ``simulate``,
``bench``, ``demo``) join the CLI through the ``shoppulse.commands`` entry-point group.
"""
