-- Databricks notebook source
-- MAGIC %md
-- MAGIC ## Orders by month

-- COMMAND ----------

CREATE WIDGET TEXT month DEFAULT 'Oct';

-- COMMAND ----------

-- DBTITLE 1,Count
SELECT count(*) FROM workspace.silver.orders WHERE month = '$month'

-- COMMAND ----------

-- MAGIC %python
-- MAGIC month = dbutils.widgets.get("month")
-- MAGIC
-- MAGIC dbutils.notebook.exit(month)
