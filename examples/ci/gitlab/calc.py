"""A tiny module under test."""

import os

BROKEN = os.path.exists(os.path.join(os.path.dirname(__file__), "BROKEN"))


def add(a, b):
    return a + b + (1 if BROKEN else 0)


def mul(a, b):
    return a * b
