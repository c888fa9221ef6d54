# Databricks notebook source
dbutils.widgets.text("execution", "1")
execution = int(dbutils.widgets.get("execution"))
if execution < 2:
    raise RuntimeError(f"execution {execution} fails")
print("succeeded on execution", execution)
