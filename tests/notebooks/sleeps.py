# Databricks notebook source
import os, time
with open(dbutils.widgets.get("pid_file"), "w") as f:
    f.write(f"{os.getpid()}\n")
print("sleeping")
time.sleep(120)
