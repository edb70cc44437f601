"""clbench: a continual-learning benchmark harness centred on PackNet."""

__version__ = "0.1.0"
