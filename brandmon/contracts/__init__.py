"""Contracts every stage shares: the records on brandmon's topics, the model folder's
manifest, and the classifier interface.

They belong to no stage, so a stage that reads what another writes imports them from here
and never from the other stage.
"""
