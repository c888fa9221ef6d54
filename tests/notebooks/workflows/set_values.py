# Databricks notebook source
rows = 1000
dbutils.jobs.taskValues.set("rows", rows)
dbutils.jobs.taskValues.set("table", "workspace.bronze.events")
