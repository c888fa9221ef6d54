# Databricks notebook source
# MAGIC %run "../shared lib/constants"

# COMMAND ----------

nested_value = CONSTANT * 2
