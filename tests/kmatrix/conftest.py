import os
import sys

# scripts/kmatrix is a package next to the scripts/kernel-matrix launcher.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
