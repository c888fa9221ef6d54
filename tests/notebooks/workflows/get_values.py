# Databricks notebook source
rows = dbutils.jobs.taskValues.get(taskKey="bronze", key="rows")
table = dbutils.jobs.taskValues.get("bronze", "table")
missing = dbutils.jobs.taskValues.get("bronze", "missing", default="fallback")
print(f"{table}: {rows} rows ({missing})")
dbutils.notebook.exit(f"{rows}")
