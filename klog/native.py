"""Chooser between the C extension klog._native and its pure-Python twin.

Placeholder until the native module lands; see native/ and klog/_native_py.py.
"""
