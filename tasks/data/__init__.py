"""The data stage: read the tables, check them against the configuration, report what the data
looks like (the guardrails), and split the rows the search sees.

Modules are imported one by one (``from tasks.data.split import split_data``): this package
re-exports nothing, so importing one step never loads the libraries of another.
"""
