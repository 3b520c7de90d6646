"""Bundled template files (a package only so that wheels ship the YAML as package data)."""
