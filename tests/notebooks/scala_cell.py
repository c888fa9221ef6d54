# Databricks notebook source
print("python first")

# COMMAND ----------

# MAGIC %scala
# MAGIC println("scala")
