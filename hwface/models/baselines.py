"""(family module; being written)"""
