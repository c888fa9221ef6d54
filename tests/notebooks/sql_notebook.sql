-- Databricks notebook source
-- MAGIC %md
-- MAGIC A SQL notebook: its own cells are SQL, magic cells are other languages.

-- COMMAND ----------

-- MAGIC %python
-- MAGIC print("python inside a SQL notebook")

-- COMMAND ----------

-- DBTITLE 1,Count
SELECT count(*) FROM workspace.silver.events
