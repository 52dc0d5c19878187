"""Built-in MapReduce applications: ``wc``, ``indexer``, ``grep``, ``sort``, and
the MIT 6.5840 lab's test apps (``mtiming``, ``rtiming``, ``jobcount``,
``early_exit``, ``crash``, ``nocrash``)."""
