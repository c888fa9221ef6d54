# Databricks notebook source
library(SparkR)

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 1
