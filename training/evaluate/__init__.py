"""Evaluation: metrics over a labelled set and the plots drawn from them."""
