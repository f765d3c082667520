"""The `workbench bench` workloads: a closed loop of clients and an open loop of Poisson
arrivals, through the engine against static batching and one request at a time, against a
peer server (``peer.py``), and the sizing search for requests/day per replica (``sizing.py``)."""
