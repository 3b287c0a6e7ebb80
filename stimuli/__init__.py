"""Procedural, index-addressable stimulus sets and their labels."""
