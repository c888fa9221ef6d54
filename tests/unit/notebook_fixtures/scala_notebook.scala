// Databricks notebook source
val df = spark.range(3)

// COMMAND ----------

// MAGIC %md
// MAGIC Scala notebooks use `//` comments.

// COMMAND ----------

// MAGIC %python
// MAGIC print("from python")
